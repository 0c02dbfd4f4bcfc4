"""Face occlusion restoration: synthetic occlusions, the restore task for the trainer, `vsr restore`, `vsr eval restore`."""
