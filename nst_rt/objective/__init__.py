"""The loss and its gradient with respect to the image: the whole-image objective, the tiled one, and the
loss terms in numpy."""
