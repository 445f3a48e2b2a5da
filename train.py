"""Train a hierarchical multi-task model: python train.py --config_file_path configs/hmtl.json --serialization_dir out"""
from hmtl.cli import train_main

if __name__ == "__main__":
    train_main()
