-- The three coverage indexes of 0038 are read by nothing since image_coverage (0042) counts
-- coverage from one small table kept by triggers; each still cost a write with every manifest,
-- scan state and inventory written (a re-evaluation rewrites a thousand scan states).
DROP INDEX manifests_coverage;
DROP INDEX image_scans_coverage;
DROP INDEX image_inventories_empty;
