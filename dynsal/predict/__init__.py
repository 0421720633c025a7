"""Saliency maps for videos: processing as the authors did it, output writers, the pipeline."""
