"""Explanations (Grad-CAM, Grad-CAM++, SHAP, LIME) and the measurements that check them."""
