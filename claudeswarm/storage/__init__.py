"""The storage seam: typed store protocols and their backends."""
