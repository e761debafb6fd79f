"""Images in and out (Pillow), files written atomically, and the layout between images and tensors."""
