"""Evaluation: did fine-tuning help, and should you fine-tune at all? Base, tuned, few-shot
base and retrieval base on held-out rows.

evaluate.py  `python -m training eval RUN_DIR`: generate, score, save RUN_DIR/eval/
metrics.py   per-row scores, the metric that fits the references, the sign-test verdict, METRICS
decision.py  the recommendation (the cheapest side nothing dearer clearly beats), decision.md
"""
