"""The commands every surface shares: one argument grammar (`grammar`, with `study_flags`,
`deploy_flags` and `flag_types`), parsed flags into models (`train_spec`), models back into
flags (`unparse`), and the runners that call `Client` and print a view (`runners`). The CLI
(`jupyter_cloudml.cli`) and the magics both run commands through these."""
