"""`nnspec sweep`: a grid of `--vary` values trained in turn (`run`), its results table and
best.yaml (`results`), the complexity plot (`complexity_plot`), and the `--set PATH=VALUE`
overrides that both `train` and `sweep` apply (`overrides`)."""
