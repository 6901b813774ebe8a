"""nnspec's runtime: everything that runs a compiled model, grouped by job.

- `cli/`: the `nnspec` command (`main.py`) and one module per subcommand; nothing imports it.
- `training/`: `train_spec` and `fit`, early stopping, optimizers, metrics, the run folder and
  its writer, evaluation of a checkpoint, plots.
- `data/`: the data sets (digits, torchvision's, csv, npz), their splits and sample inputs.
- `parallel/`: device choice, DDP's process group and the `--nproc` launcher.
- `sweep/`: `nnspec sweep` (grids of `--vary` values, results, the complexity plot) and
  `--set` overrides.
- `storage/`: the one atomic writer, checkpoints, the codegen/validate cache, exports.

`errors.py` (UserError, the exit-2 error) and `tasks.py` (what each task measures) are shared by all.
"""
