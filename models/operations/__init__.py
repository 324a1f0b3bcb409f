"""Operating the shop: dead letters and the failures that put them there."""
