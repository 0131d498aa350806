"""Models: the embedded tiny Llama, and resolution of hub ids and local paths."""

from ._tiny import BYTES_SHAPE, CHAT_TEMPLATE, TinyModelShape, build_tokenizer, tiny_model_path

__all__ = ["BYTES_SHAPE", "CHAT_TEMPLATE", "TinyModelShape", "build_tokenizer", "tiny_model_path"]
