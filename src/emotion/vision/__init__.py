"""How a face photo becomes the model's input and its output calibrated probabilities.

Shared by training, evaluation, export and serving so every one of them sees the same pixels:
face detection, the crop preprocessing contract, test-time augmentation, temperature scaling.
"""
