"""The end-to-end pipeline (`evaluate-pipeline`): every job in order, cached, recorded."""
