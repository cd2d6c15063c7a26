"""IC-Light for AUTOMATIC1111 stable-diffusion-webui: everything that works without A1111.

Only `a1111_adapter` imports A1111's `modules.*`.
"""
