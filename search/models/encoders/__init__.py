"""Image-text embedding models: the `Encoder` protocol and one module per implementation."""
