// Package inventory finds the packages in a container image — operating-system packages
// (dpkg, apk, rpm) and language packages (Java archives, Go binaries, Python, Node.js, .NET,
// Ruby, Rust, PHP) — with the file each was found in and the layer that introduced it.
//
// ScanLayer reads one layer's tar stream once and returns what that layer contributes, a
// LayerInventory that depends on the layer's content only and can be cached by digest. Merge
// stacks the layer inventories of an image as a container runtime stacks layers (whiteouts,
// opaque directories, overwrites) and attributes each package to its layer. Scan does both.
// The package reads only the streams it is handed; it knows neither the blob store nor the
// registry. The files of a layer are read by plugins (internal/inventory/plugin: the
// interface, shaped as osv-scalibr's extractors; internal/inventory/plugins: the list, one
// folder per ecosystem), and Fingerprint names the set a cached LayerInventory was read with.
// README.md describes the layout, how to add an ecosystem, the merge rules and the limits.
package inventory
