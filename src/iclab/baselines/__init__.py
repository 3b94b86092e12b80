"""In-context predictors that are not transformers (least squares, Lasso, k-NN, ...)."""
