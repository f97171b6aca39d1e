"""jaxmlp: vectorized MLP-on-MNIST hyperparameter studies in JAX."""
