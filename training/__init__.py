"""Everything below the UI: data, models, config, training backends, jobs, evaluation,
chat engine, export. Never imports gradio (ruff rule TID251 in pyproject.toml)."""
