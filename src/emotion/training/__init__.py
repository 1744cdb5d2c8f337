"""The models and their training: timm backbones, the training loop, checkpoints, metrics."""
