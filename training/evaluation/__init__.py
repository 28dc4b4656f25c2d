"""Evaluation: did fine-tuning help? Base, tuned and few-shot base on held-out rows.

evaluate.py  `python -m training eval RUN_DIR`: generate, score, save RUN_DIR/eval/
metrics.py   per-row scores, the metric that fits the references, the sign-test verdict, METRICS
"""
