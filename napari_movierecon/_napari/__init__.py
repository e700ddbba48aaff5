"""napari contributions (npe2 manifest ``napari.yaml``): everything that touches napari or Qt."""
