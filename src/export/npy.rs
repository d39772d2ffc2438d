//! NumPy .npy reader: (being written)
