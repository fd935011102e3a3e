variable "name" {
  description = "Prefix of every resource's name."
  type        = string
  default     = "peakload"
}

variable "image" {
  description = "The peakload image (the repository's Dockerfile), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/peakload:1.0 with your scenarios added."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository holding the image, so the execution role may pull it. Empty for a public image."
  type        = string
  default     = ""
}

variable "results_bucket" {
  description = "Name of the existing S3 bucket for the shards' and the merge's results."
  type        = string
}

variable "results_prefix" {
  description = "Key prefix the tasks may read and write under (ends with /); each run uses its own prefix below it."
  type        = string
  default     = "peakload/"

  validation {
    condition     = can(regex("^[^*?]+/$", var.results_prefix))
    error_message = "results_prefix ends with / and has no wildcard."
  }
}

variable "results_kms_key_arn" {
  description = "KMS key of the bucket's default SSE-KMS encryption, if it has one (the tasks then encrypt and decrypt with it). Empty for SSE-S3."
  type        = string
  default     = ""
}

variable "cpu" {
  description = "Fargate CPU units a task (a shard): 4096 = 4 vCPU. Size from docs/scale.md: a shard's peak requests/s x 41 us / 0.5."
  type        = number
  default     = 4096
}

variable "memory" {
  description = "Fargate memory a task, MiB."
  type        = number
  default     = 8192
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64 (the image must be built for it)."
  type        = string
  default     = "X86_64"
}

variable "vpc_id" {
  description = "VPC the tasks run in (the subnets passed to run-task are in it)."
  type        = string
}

variable "target_cidrs" {
  description = "Where the load goes: the tasks may connect to these CIDRs on target_ports (and to 443 anywhere, for S3, ECR and CloudWatch Logs)."
  type        = list(string)
}

variable "target_ports" {
  description = "TCP ports of the system under test."
  type        = list(number)
  default     = [443]
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the tasks' output, days."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Existing KMS key ARN for the log group. Empty creates one."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
