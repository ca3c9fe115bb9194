"""Image-to-text models for captions and questions: the `Captioner` protocol and one module per
implementation."""
