"""``cfnb fit generator|decoder|editor|classifier --data SPEC --out DIR``: the helper models for your own images,
from the shell (the ``cfnb.training.fit_*`` functions underneath)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

KINDS = ("classifier", "generator", "decoder", "editor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cfnb fit``."""
    parser.add_argument("kind", choices=KINDS, help="what to train")
    parser.add_argument("--data", required=True,
                        help="an image folder (ImageFolder layout), celeba:ROOT, or an .npz with images/labels")
    parser.add_argument("--out", required=True, help="folder for the weights, card.json and checkpoints")
    parser.add_argument("--classifier", default=None,
                        help="decoder: the classifier to invert; editor: the multi-label attribute classifier (a "
                             "shipped name or a model folder)")
    parser.add_argument("--size", type=int, default=None,
                        help="resize images to SIZE x SIZE (required for folders of mixed sizes)")
    parser.add_argument("--split", default="train", help="CelebA split (train, valid, test)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first LIMIT images")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (classifier, generator, decoder)")
    parser.add_argument("--steps", type=int, default=None, help="steps (editor)")
    parser.add_argument("--adversarial-epochs", type=int, default=None,
                        help="generator: epochs as a VAE-GAN after the VAE's (sharper drawings)")
    parser.add_argument("--adversarial", type=float, default=None,
                        help="decoder: weight of the adversarial loss on decoded edits (0: none)")
    parser.add_argument("--generator", default=None,
                        help="decoder: draw through this generator (a ConvVAE: a shipped name or a model folder); only "
                             "a mapper from feature maps to its codes is trained")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--validation", type=float, default=0.1, help="share of the images held out to measure on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    parser.add_argument("--amp", action="store_true", help="mixed precision")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="save a checkpoint every N steps")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Train what ``args`` asks for and print its card; exit status 2 with one line on bad input."""
    from . import fitting
    from .mirror_decoder import DecoderLossWeights

    try:
        data = _data(args)
        options: dict[str, Any] = {"validation": args.validation, "seed": args.seed, "device": args.device,
                                   "out": args.out, "checkpoint_every": args.checkpoint_every,
                                   "resume": args.resume, "progress": not args.no_progress}
        for name in ("epochs", "steps", "batch_size", "lr"):
            if getattr(args, name) is not None:
                options[name] = getattr(args, name)
        if args.kind == "editor":
            if "epochs" in options:
                raise ValueError("the editor trains for --steps, not --epochs")
            result = fitting.fit_editor(data, attribute_classifier=_classifier(args), **options)
        else:
            if "steps" in options:
                raise ValueError(f"a {args.kind} trains for --epochs, not --steps")
            options["amp"] = args.amp
            if args.kind != "generator" and args.adversarial_epochs is not None:
                raise ValueError("--adversarial-epochs is for a generator; a decoder takes --adversarial WEIGHT")
            if args.kind != "decoder" and args.adversarial is not None:
                raise ValueError("--adversarial is for a decoder; a generator takes --adversarial-epochs N")
            if args.kind != "decoder" and args.generator is not None:
                raise ValueError("--generator is for a decoder (the generator it draws through)")
            if args.kind == "decoder":
                if args.adversarial is not None:
                    options["weights"] = DecoderLossWeights(adversarial=args.adversarial)
                if args.generator is not None:
                    from ..models import load

                    options["generator"] = load(args.generator)
                result = fitting.fit_mirror_decoder(_classifier(args), data, **options)
            elif args.kind == "generator":
                if args.adversarial_epochs is not None:
                    options["adversarial_epochs"] = args.adversarial_epochs
                result = fitting.fit_generator(data, **options)
            else:
                result = fitting.fit_classifier(data, **options)
    except (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError) as error:
        message = error.args[0] if error.args else repr(error)
        print(f"cfnb fit: {message}", file=sys.stderr)
        return 2
    card = result.card
    print(f"{card.architecture} trained on {card.data}")
    print(f"quality: {card.quality}")
    print(f"wrote {result.folder}: load it with cfnb.models.load({str(result.folder)!r})")
    return 0


def _data(args: argparse.Namespace) -> Any:
    from ..data.sources import open_data

    source = open_data(args.data, size=args.size, split=args.split)
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {args.limit}")
        import torch

        source = source.subset(torch.arange(min(args.limit, len(source))))
    return source


def _classifier(args: argparse.Namespace) -> Any:
    from ..models import load

    if args.classifier is None:
        raise ValueError(f"a {args.kind} needs --classifier (a shipped name or a model folder)")
    return load(args.classifier)
