"""Lists every IC-Light file found as an A1111 SD Unet option (Settings > SD Unet shows them)."""
from modules import script_callbacks

from iclight_a1111 import a1111_adapter

script_callbacks.on_list_unets(a1111_adapter.add_unet_options)
