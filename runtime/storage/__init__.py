"""What nnspec keeps on disk: the one atomic writer (`atomic`), checkpoints (`checkpoint`), the
validate/codegen cache (`codegen_cache`) and model exports (`export`)."""
