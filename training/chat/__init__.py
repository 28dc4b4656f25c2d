"""Chat: base and tuned replies side by side from one loaded model.

engine.py      ChatEngine: one base model, run adapters attached, every column one batch
generation.py  the pieces of one batched generate() call (prompts, stops, sampling, streams)
cpu_decode.py  CPU decoding: W·xᵀ linears where measured quicker, and row-masked LoRA
columns.py     which rows a prompt becomes (base, tuned, few-shot, retrieval) and their
               example turns: random ones, or the BM25 nearest (Retriever)
"""
