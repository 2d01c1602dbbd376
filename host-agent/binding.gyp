{
  "targets": [
    {
      "target_name": "labrig_gpio",
      "sources": ["native/gpio_uapi.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
    }
  ]
}
