"""Reports: report sections over a store, papermill execution and nbconvert HTML rendering."""
