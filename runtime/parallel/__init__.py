"""Where a run computes: device choice and CPU threads (`device`), DDP's process group and
collectives (`distributed`), and torchrun as `nnspec train --nproc N` starts it (`launcher`).
"""
