class ConfigError(ValueError):
    """A study file, training config, dataset or storage URL a person must fix. The message says where and how."""
