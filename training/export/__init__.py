"""Export: take a run away as an adapter folder or .zip, a merged model, or a Hub push.

export.py      `python -m training export RUN_DIR`: build each artefact, push with a token
model_card.py  README.md for the adapter or merged model, built from the run's files
"""
