"""The stylization pipeline: options, the coarse-to-fine schedule, the memory plan per scale, checkpoints,
and the Stylizer that runs them (images in, optimised image out)."""
