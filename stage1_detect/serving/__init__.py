"""The detector as a Label Studio ML backend (`stage1-detect serve`): the HTTP contract (app),
what one request predicts (predictor), where a task's image comes from (images), which project
label a model class becomes (labels), and bulk pre-annotation through the backend (bulk)."""
