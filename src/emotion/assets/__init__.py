"""The pinned model files of the DVC stage ``assets``."""
