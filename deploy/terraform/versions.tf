# Hoshino on AWS: a bucket that carries the packets, a doorbell queue per node, and one IAM user per
# node that may read and delete only its own mail. README.md ("Deploying with least privilege") says
# what each identity may do and why; tests/test_deploy.py and tests/test_iam.py check it.

terraform {
  required_version = ">= 1.2" # lifecycle preconditions

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.0 gives data.aws_region its `region` attribute (`name` is deprecated there).
      version = ">= 6.0"
    }
  }
}
