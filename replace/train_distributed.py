"""`python -m replace.train_distributed`: DDP training of a surrogate from a trace store.

    torchrun --standalone --nproc_per_node=2 -m replace.train_distributed \
        --function myapp.fees:shipping_fee --store sqlite:///traces.db --out fee_surrogate

See `replace._distributed.fit_distributed` for what each rank does.
"""

from ._distributed import main

if __name__ == "__main__":
    raise SystemExit(main())
