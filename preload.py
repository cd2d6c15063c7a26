"""Command-line flags of the IC-Light extension (A1111 calls `preload` before parsing arguments)."""


def preload(parser) -> None:
    parser.add_argument(
        "--iclight-dir",
        type=str,
        default=None,
        help="extra folder with IC-Light .safetensors files (models/ic-light is always searched)",
    )
