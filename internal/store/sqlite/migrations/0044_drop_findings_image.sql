-- findings_image (0024) repeated every column of findings but the query columns of 0027 in
-- (repository, image, scan type, vulnerability) order, so that a re-evaluation read an
-- image's findings without a table lookup per finding: at 100,000 images it was 2.8 GiB of a
-- 15.6 GiB store, the largest index, and every finding written (a re-evaluation's new ones)
-- wrote it too. The key's own index (the UNIQUE constraint's) gives the same range in the same
-- order; the rows of an image are written together, so their lookups read a few adjacent
-- table pages.
DROP INDEX findings_image;
