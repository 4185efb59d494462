"""Unit tests of keras_acts.training: schedules, weight-decay exclusions, data
validation and resumable ordering, TFDS reading, checkpoint round trip, PWLU
realignment helper."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_acts
from keras_acts.training import data as data_lib
from keras_acts.training import images
from keras_acts.training import schedules
from keras_acts.training.checkpoint import TrainingCheckpoint
from keras_acts.training import realign_pwlu
from keras_acts.training.models import build_classifier
from keras_acts.training.optim import make_sgd
from keras_acts.training.optim import weight_decay_exclusions


def test_warmup_cosine_and_linear():
    cos = schedules.WarmupDecay(1.0, total_steps=110, warmup_steps=10, decay="cosine")
    assert float(cos(0)) == 0.0
    assert float(cos(5)) == pytest.approx(0.5)
    assert float(cos(10)) == pytest.approx(1.0)
    assert float(cos(60)) == pytest.approx(0.5, abs=1e-6)
    assert float(cos(110)) == pytest.approx(0.0, abs=1e-6)
    lin = schedules.WarmupDecay(1.0, total_steps=110, warmup_steps=10, decay="linear",
                                end_lr=0.1)
    assert float(lin(60)) == pytest.approx(0.55)
    assert float(lin(500)) == pytest.approx(0.1)
    clone = schedules.WarmupDecay.from_config(lin.get_config())
    assert float(clone(60)) == pytest.approx(0.55)
    with pytest.raises(ValueError):
        schedules.WarmupDecay(1.0, 10, decay="step")
    assert schedules.scaled_learning_rate(0.1, 1024) == pytest.approx(0.4)


def test_warmup_cosine_is_keras_cosine_decay_up_to_float32_rounding():
    """Why WarmupDecay stays: keras.optimizers.schedules.CosineDecay(warmup_steps=...)
    gives the same schedule but not the same float32 values (the warm-up and the
    cosine round in another order: about 2% of the steps differ in the last
    bit), which would change every existing run's weights; and it has no linear
    or constant decay."""
    differ = 0
    for base, total, warmup in ((0.4, 100, 10), (0.015625, 37, 5), (0.1, 8, 0)):
        ours = schedules.WarmupDecay(base, total_steps=total, warmup_steps=warmup)
        keras_cos = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else base, total - warmup, warmup_target=base if warmup else None,
            warmup_steps=warmup)
        steps = np.arange(total + 3)
        a = np.array([float(ours(s)) for s in steps], np.float32)
        b = np.array([float(keras_cos(s)) for s in steps], np.float32)
        np.testing.assert_allclose(a, b, rtol=3e-7, atol=1e-9)
        differ += int(np.sum(a != b))
    assert differ > 0


def test_weight_decay_excludes_bn_and_our_activations():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras_acts.PWLU(name="pwlu")(x)
    x = keras_acts.AconC(name="acon")(x)
    x = keras_acts.MetaAcon(reduction=2, name="meta")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    excluded = {v.path for v in weight_decay_exclusions(model)}
    ours = {v.path for name in ("bn", "pwlu", "acon", "meta")
            for v in model.get_layer(name).trainable_weights}
    assert ours and excluded == ours
    assert "conv/kernel" not in excluded and "head/kernel" not in excluded
    opt = make_sgd(model, 0.1, weight_decay=1e-2)
    # One step with zero gradients: only non-excluded variables shrink.
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    for v in model.trainable_variables:
        changed = not np.allclose(before[v.path], v.numpy())
        if v.path in ours:
            assert not changed, v.path
        elif np.any(before[v.path]):
            assert changed, v.path


def test_image_folder_errors_name_path_and_layout(tmp_path, image_folder):
    missing = str(tmp_path / "nope")
    with pytest.raises(data_lib.DataDirError, match="nope.*Expected layout"):
        data_lib.check_image_folder(missing)
    (tmp_path / "d" / "train" / "a").mkdir(parents=True)
    with pytest.raises(data_lib.DataDirError, match=r"train.a.*no image files"):
        data_lib.check_image_folder(str(tmp_path / "d"))
    (tmp_path / "d" / "train" / "a" / "x.jpg").write_bytes(b"")
    with pytest.raises(data_lib.DataDirError, match=r"d.val.*does not exist"):
        data_lib.check_image_folder(str(tmp_path / "d"))
    (tmp_path / "d" / "val" / "b").mkdir(parents=True)
    (tmp_path / "d" / "val" / "b" / "y.png").write_bytes(b"")
    with pytest.raises(data_lib.DataDirError, match="differ"):
        data_lib.check_image_folder(str(tmp_path / "d"))
    listing = data_lib.check_image_folder(image_folder)
    assert listing["train"][0] == ["class_0", "class_1", "class_2"]
    assert len(listing["train"][1]) == 24


def test_train_order_is_resumable_and_eval_is_padded(image_folder):
    data = data_lib.image_folder_data(image_folder, image_size=16)
    full = list(data.train_dataset(4, epoch=1, steps=5))
    resumed = list(data.train_dataset(4, epoch=1, skip_steps=2, steps=5))
    assert len(full) == 5 and len(resumed) == 3
    for (xa, ya, wa), (xb, yb, wb) in zip(full[2:], resumed):
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
        np.testing.assert_allclose(xa.numpy(), xb.numpy())
    other_epoch = list(data.train_dataset(4, epoch=2, steps=5))
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(full, other_epoch))
    assert full[0][0].shape == (4, 16, 16, 3)
    batches = list(data.eval_dataset(4))  # 9 examples -> 3 batches, 3 padded
    assert len(batches) == data.eval_steps(4) == 3
    weights = np.concatenate([b[2].numpy() for b in batches])
    assert weights.sum() == 9 and weights[-3:].sum() == 0


def test_sharded_pipelines_split_the_global_batch(image_folder):
    data = data_lib.image_folder_data(image_folder, image_size=16)
    ctxs = [tf.distribute.InputContext(2, i, 2) for i in range(2)]
    firsts = [next(iter(data.train_dataset(8, epoch=0, input_context=c))) for c in ctxs]
    assert all(f[0].shape[0] == 4 for f in firsts)


def test_tfds_data_and_errors(tfds_dir, tmp_path):
    data = data_lib.tfds_data("tiny_images", data_dir=tfds_dir, image_size=16)
    assert (data.num_classes, data.num_train, data.num_eval) == (3, 16, 6)
    x, y, w = next(iter(data.train_dataset(4, epoch=0)))
    assert x.shape == (4, 16, 16, 3) and y.dtype == tf.int32 and np.all(w.numpy() == 1)
    with pytest.raises(data_lib.DataDirError, match="does not exist"):
        data_lib.tfds_data("tiny_images", data_dir=str(tmp_path / "missing"))
    with pytest.raises(data_lib.DataDirError, match="not prepared"):
        data_lib.tfds_data("mnist", data_dir=str(tmp_path))


def test_checkpoint_round_trip_keeps_optimizer_and_pwlu_state(tmp_path):
    model = build_classifier("tiny_cnn", "pwlu", 3, 16, phase1_steps=None)
    opt = make_sgd(model, 0.1, momentum=0.9, weight_decay=1e-4)
    x = tf.random.normal([4, 16, 16, 3])
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True)))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                model.trainable_variables))
    assert realign_pwlu(model) == 3 and realign_pwlu(model) == 0
    ckpt = TrainingCheckpoint(str(tmp_path), model=model, optimizer=opt)
    ckpt.save(7)
    saved = [v.numpy().copy() for v in model.weights + opt.variables]

    model2 = build_classifier("tiny_cnn", "pwlu", 3, 16, phase1_steps=None)
    opt2 = make_sgd(model2, 0.1, momentum=0.9, weight_decay=1e-4)
    ckpt2 = TrainingCheckpoint(str(tmp_path), model=model2, optimizer=opt2)
    assert ckpt2.restore() == 7
    for a, b in zip(saved, model2.weights + opt2.variables):
        np.testing.assert_array_equal(a, b.numpy())
    assert int(opt2.iterations.numpy()) == 2
    assert all(not layer.in_phase1 for layer in keras_acts.training.pwlu_layers(model2))
    assert os.path.basename(ckpt2.latest) == "ckpt-7"


def test_current_learning_rate_evaluates_the_schedule_at_the_iteration():
    from keras_acts.training.optim import current_learning_rate

    model = build_classifier("tiny_cnn", "serf", 3, 16)
    schedule = schedules.WarmupDecay(0.4, total_steps=100, warmup_steps=10)
    for loss_scale in (False, True):
        opt = make_sgd(model, schedule, loss_scale=loss_scale)
        opt.iterations.assign(5)
        assert current_learning_rate(opt) == float(schedule(5)) == pytest.approx(0.2)
    assert current_learning_rate(make_sgd(model, 0.25)) == 0.25


def _encodings():
    import io

    from PIL import Image

    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    out = {"jpg": tf.io.encode_jpeg(image).numpy(), "png": tf.io.encode_png(image).numpy()}
    for fmt in ("gif", "bmp", "webp"):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format=fmt.upper())
        out[fmt] = buf.getvalue()
    return out


def _decodes(encoded):
    try:
        tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return True
    except tf.errors.InvalidArgumentError:
        return False


def test_image_file_check_agrees_with_the_decoder():
    """Issue 11 item 8: the cheap check (no decoding) accepts every complete
    JPEG/PNG/GIF/BMP/WebP, also with a short tail after its end marker, and
    rejects, with a reason, each broken file that tf.io.decode_image fails on."""
    cases = {}
    for fmt, enc in _encodings().items():
        cases[f"{fmt}"] = (enc, None)
        cases[f"{fmt} half"] = (enc[:len(enc) // 2], "truncated")
        cases[f"{fmt} minus 1 byte"] = (enc[:-1], "truncated")
    cases["jpg + 1000 zero bytes"] = (_encodings()["jpg"] + b"\0" * 1000, None)
    cases["png + 1000 zero bytes"] = (_encodings()["png"] + b"\0" * 1000, None)
    cases["text"] = (b"not an image\n", "not a JPEG, PNG, GIF, BMP or WebP file")
    cases["html"] = (b"<html><body>404</body></html>", "not a JPEG, PNG, GIF, BMP or WebP")
    cases["empty"] = (b"", "empty file")
    cases["3 bytes"] = (b"\xff\xd8\xff", "truncated JPEG")
    for name, (enc, reason) in cases.items():
        ok, why = images.image_file_check(tf.constant(enc))
        assert bool(ok) == (reason is None), (name, why)
        # Never rejects what decodes, nor the reverse; except a GIF that lacks only
        # its trailer byte (decodes, rejected as truncated: documented).
        assert bool(ok) == _decodes(enc) or name == "gif minus 1 byte", name
        if reason:
            assert reason in why.numpy().decode(), (name, why)
    # Inside a tf.data map (graph mode), as the pipelines use it.
    ds = tf.data.Dataset.from_tensor_slices([c[0] for c in cases.values()])
    got = [bool(ok) for ok, _ in ds.map(images.image_file_check)]
    assert got == [c[1] is None for c in cases.values()]


def test_make_activation_is_the_registry_with_keras_names_as_activation_layers():
    from keras_acts.training.models import make_activation

    layer = make_activation("pwlu", phase1_steps=7)
    assert isinstance(layer, keras_acts.PWLU) and layer.phase1_steps == 7
    assert make_activation("PWLU") is not make_activation("PWLU")
    relu = make_activation("relu", name="r")
    assert type(relu) is keras.layers.Activation and relu.name == "r"
    with pytest.raises(ValueError, match=r"Unknown activation 'relux'.*'acon_c'"):
        make_activation("relux")
    with pytest.raises(ValueError, match="phase1_steps"):
        make_activation("serf", phase1_steps=7)  # a PWLU argument for another layer


def test_classifier_head_and_original_backbone():
    from keras_acts.training.models import build_classifier as build

    model = build("tiny_cnn", "relu", 5, 16)
    assert model.output_shape == (None, 5)
    assert [type(l).__name__ for l in model.layers[-2:]] == ["GlobalAveragePooling2D", "Dense"]
    assert model.layers[-1].activation is keras.activations.linear  # logits
    acts = [l for l in model.layers[1].layers if isinstance(l, keras.layers.Activation)]
    assert len(acts) == 3
    with pytest.raises(ValueError, match="has no activation of its own"):
        build("tiny_cnn", None, 5, 16)
    original = build("mobilenet_v3_small", None, 4, 32, source="keras")
    swapped = build("mobilenet_v3_small", "serf", 4, 32, source="keras", match="hard_swish")
    serfs = [l for l in swapped.layers[1]._flatten_layers() if isinstance(l, keras_acts.Serf)]
    assert serfs and original.count_params() == swapped.count_params()
    assert not any(isinstance(l, keras_acts.Serf) for l in original.layers[1]._flatten_layers())
