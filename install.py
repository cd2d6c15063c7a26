"""Run by A1111 at launch: the extension needs only packages A1111 ships; reinstall any that is missing."""
import launch

for package in ("safetensors", "einops", "numpy"):
    if not launch.is_installed(package):
        launch.run_pip(f"install {package}", f"{package}, needed by the IC-Light extension")
