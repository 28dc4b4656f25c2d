"""Gradio UI pieces: one module per tab, each exposing one build_*() that lays out and
wires its tab. The only package besides app.py that imports gradio."""
