"""Models: the embedded tiny Llama, and resolution of hub ids and local paths."""

from ._tiny import CHAT_TEMPLATE, TinyModelShape, build_tokenizer, tiny_model_path

__all__ = ["CHAT_TEMPLATE", "TinyModelShape", "build_tokenizer", "tiny_model_path"]
