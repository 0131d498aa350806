"""The surrogates' kernel, `ConstantKernel * RBF(one length scale per parameter) + WhiteKernel`, computed faster where
a fit spends its time. Imported only when a surrogate is fitted: it imports scikit-learn.

Each step of a fit's optimiser asks the kernel and its gradient at the training points. scikit-learn builds that
gradient from its parts: the squared differences of the points, which do not change between steps, computed again
each time, and the parts' gradients stacked into new arrays twice over. `ArdKernel` keeps the squared differences
for the fit and writes the gradient into one array, with the same floating-point operations in the same order, so
a fit gives the same numbers bit for bit (tests/analysis/test_shapes.py compares it with scikit-learn's on its own
kernel). Everything else (predictions, a kernel with a fixed hyperparameter) is scikit-learn's own code.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Sum, WhiteKernel


def surrogate_kernel(dims: int) -> ArdKernel:
    return ArdKernel(
        ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.full(dims, 0.5), (0.05, 20.0)), WhiteKernel(0.1, (1e-6, 1.0))
    )


class ArdKernel(Sum):
    """`k1 + k2` with k1 = ConstantKernel * RBF (anisotropic) and k2 = WhiteKernel, as scikit-learn's Sum."""

    def __call__(self, X, Y=None, eval_gradient=False):
        constant, rbf, white = self.k1.k1, self.k1.k2, self.k2
        length_scale = np.squeeze(rbf.length_scale).astype(float)
        X = np.atleast_2d(X)
        if (not eval_gradient or Y is not None or length_scale.ndim != 1 or len(length_scale) != X.shape[1]
                or any(hyperparameter.fixed for hyperparameter in self.hyperparameters)):
            return super().__call__(X, Y, eval_gradient)
        n, d = X.shape
        # as RBF.__call__, ConstantKernel.__call__ and WhiteKernel.__call__ compute them
        K_rbf = squareform(np.exp(-0.5 * pdist(X / length_scale, metric="sqeuclidean")))
        np.fill_diagonal(K_rbf, 1)
        K_constant = np.full((n, n), constant.constant_value, dtype=np.array(constant.constant_value).dtype)
        K_white = white.noise_level * np.eye(n)
        # Product's and Sum's gradients, stacked: d(constant), d(each length scale), d(noise level)
        gradient = np.empty((n, n, d + 2))
        gradient[:, :, 0] = K_constant * K_rbf
        scales = gradient[:, :, 1:d + 1]
        np.divide(self._squared_differences(X), length_scale**2, out=scales)
        scales *= K_rbf[..., np.newaxis]
        scales *= K_constant[..., np.newaxis]
        gradient[:, :, d + 1] = K_white
        return K_constant * K_rbf + K_white, gradient

    def _squared_differences(self, X: np.ndarray) -> np.ndarray:
        """(X_i - X_j)^2 per parameter, kept for the array a fit passes at every step (the reference to it, held
        here, keeps the identity check sound)."""
        kept = self.__dict__.get("_differences")
        if kept is None or kept[0] is not X:
            kept = self.__dict__["_differences"] = (X, (X[:, np.newaxis, :] - X[np.newaxis, :, :]) ** 2)
        return kept[1]
