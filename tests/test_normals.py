"""Normal maps from four relights: accurate on a Lambertian sphere, flat where the alpha is empty."""
import numpy as np

from iclight_a1111.images.normals import normal_map_image, normals_from_relights


def sphere(size=129):
    """Unit normals of a sphere filling the image (x right, y up, z out) and its mask."""
    c = (size - 1) / 2
    yy, xx = np.mgrid[:size, :size]
    x, y = (xx - c) / c, (c - yy) / c
    inside = x ** 2 + y ** 2 < 1
    z = np.sqrt(np.clip(1 - x ** 2 - y ** 2, 0, None))
    return np.stack([x, y, z], axis=-1), inside


def lambertian(normals, direction, albedo=(200, 150, 100)):
    """A render lit from 45 degrees off the view axis on the given side."""
    light = np.array(direction + (1.0,)) / np.sqrt(2)
    shade = np.clip(normals @ light, 0, None)
    return (shade[..., None] * np.array(albedo)).astype(np.float64)


def test_sphere_normals_are_recovered_within_ten_degrees(report):
    normals, inside = sphere()
    relights = [lambertian(normals, d) for d in ((-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))]
    recovered = normals_from_relights(*relights)
    cosine = np.clip((recovered * normals).sum(axis=-1), -1, 1)
    error = np.degrees(np.arccos(cosine[inside])).mean()
    report(f"normal map on a Lambertian sphere: mean angular error {error:.2f} degrees")
    assert error < 10, f"mean angular error {error:.1f} degrees inside the sphere"


def test_background_is_flat_where_alpha_is_empty():
    normals, inside = sphere(33)
    relights = [lambertian(normals, d) for d in ((-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))]
    recovered = normals_from_relights(*relights, alpha=inside.astype(float))
    assert (recovered[~inside] == (0, 0, 1)).all()
    image = normal_map_image(recovered)
    assert tuple(image[0, 0]) == (128, 128, 255) and image.dtype == np.uint8


def test_normal_map_generation_relights_four_ways_in_one_batch_with_one_foreground(a1111):
    import torch
    from modules import processing

    from generation_harness import img2img, pil, subject

    first_conv_inputs = []
    hook = a1111.unet.input_blocks[0][0].register_forward_pre_hook(lambda m, args: first_conv_inputs.append(args[0].clone()))
    try:
        p = img2img([{"enabled": True, "normal_map": True}], [pil(subject(64, seed=2, alpha=True))], steps=2,
                    denoising_strength=0.9, seed=1234)
        result = processing.process_images(p)
    finally:
        hook.remove()
    assert p.batch_size == 4 and p.seed == [1234] * 4, "the four relights do not share one batch and one seed"
    assert len({tuple(row.flatten().tolist()) for row in p.init_latent}) == 4, "init latents are not four different light maps"
    for x_and_concat in first_conv_inputs:
        concat = x_and_concat[:, 4:]
        assert all(torch.equal(concat[0], row) for row in concat), "the rows do not share one foreground"
    assert len(result.images) == 5, "expected the four relights and the normal map"
    normal_map = np.array(result.images[4])
    assert tuple(normal_map[0, 0]) == (128, 128, 255), "background of the normal map is not flat"


def test_normal_map_outside_img2img_fc_is_refused(a1111):
    import pytest
    from modules import processing

    from generation_harness import subject, txt2img
    from iclight_a1111.errors import IcLightError

    p = txt2img([{"enabled": True, "normal_map": True, "foreground": subject()}], steps=2)
    with pytest.raises(IcLightError, match="'Normal map' works in img2img with an fc model and one subject"):
        processing.process_images(p)
