"""asv benchmarks of hesskit (see README.md beside this file); importing them is cheap."""
