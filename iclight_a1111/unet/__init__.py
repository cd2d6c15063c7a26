"""What changes the checkpoint's UNet: IC-Light files and their keys, the merge, the weight swap and its
backup, the merged-weights cache, the widened first conv and the concat, batch rows, device moves, Lora."""
