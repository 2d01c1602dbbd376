// labrig's bridge to the Linux GPIO character device (uAPI v2): two things JavaScript cannot
// do by itself, and nothing else.
//
//   ioctl(fd, request, buffer)  one ioctl(2) on a chip or line-request fd; the structs are laid
//                               out in host-agent/src/devices/gpio/uapi-layout.ts (tested against
//                               linux/gpio.h), so this file needs no kernel header.
//   watch(fd, callback)         a libuv poll on a line-request fd: edge events wake the event loop
//                               (no polling, no thread per line); unwatch(handle) stops it.
//
// Why an addon of our own and not libgpiod: Raspberry Pi OS Bookworm ships libgpiod 1.6 and
// Trixie 2.x, with different APIs and tools, while the raw uAPI v2 ioctls are stable since Linux
// 5.10 on both. A long-running gpioset/gpiomon child per line would add a process per line and a
// pipe round trip to every write, which shows in pulse widths. This builds with node-gyp at
// `npm ci`, as serialport and better-sqlite3 do, and links nothing but libc and libuv.

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <node_api.h>
#include <uv.h>

#define CHECK(env, call)                                   \
  do {                                                     \
    if ((call) != napi_ok) {                               \
      napi_throw_error((env), NULL, "N-API call failed: " #call); \
      return NULL;                                         \
    }                                                      \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char* what) {
  napi_value msg, error, code;
  char text[160];
  snprintf(text, sizeof text, "%s failed: %s", what, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, error, "errno", code);
  napi_throw(env, error);
  return NULL;
}

// Reads `n` arguments and the first as an fd; false (with a TypeError thrown) when they are missing.
static bool fd_and_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv, int32_t* fd, const char* usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n || napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

// ioctl(fd: number, request: number, buffer: Buffer | Uint8Array): number
static napi_value Ioctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  if (!fd_and_args(env, info, 3, argv, &fd, "ioctl(fd, request, buffer)")) return NULL;
  uint32_t request;
  CHECK(env, napi_get_value_uint32(env, argv[1], &request));
  bool is_typed = false;
  CHECK(env, napi_is_typedarray(env, argv[2], &is_typed));
  if (!is_typed) {
    napi_throw_type_error(env, NULL, "ioctl: buffer must be a Buffer or Uint8Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length, offset;
  void* data;
  napi_value arraybuffer;
  CHECK(env, napi_get_typedarray_info(env, argv[2], &type, &length, &data, &arraybuffer, &offset));
  // The request number encodes the struct size the kernel will touch; a shorter buffer would let it write past the end.
  size_t needed = (request >> 16) & 0x3fff;
  if (length < needed) {
    napi_throw_range_error(env, NULL, "ioctl: buffer is shorter than the request's struct");
    return NULL;
  }
  int rc;
  do {
    rc = ioctl(fd, (unsigned long)request, data);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return throw_errno(env, errno, "ioctl");
  napi_value result;
  CHECK(env, napi_create_int32(env, rc, &result));
  return result;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int closing;
} Watch;

static void on_closed(uv_handle_t* handle) {
  Watch* w = (Watch*)handle->data;
  free(w);
}

static void on_poll(uv_poll_t* handle, int status, int events) {
  (void)events;
  Watch* w = (Watch*)handle->data;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, global, arg;
  if (napi_get_reference_value(env, w->callback, &callback) == napi_ok && callback != NULL && napi_get_global(env, &global) == napi_ok &&
      napi_create_int32(env, status, &arg) == napi_ok) {
    // make_callback runs microtasks afterwards and keeps async hooks right, as for any libuv callback.
    if (napi_make_callback(env, w->context, global, callback, 1, &arg, NULL) == napi_pending_exception) {
      // Nobody above us can catch it: hand it to process 'uncaughtException', as libuv callbacks in core do.
      napi_value error;
      if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void stop_watch(Watch* w) {
  if (w->closing) return;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->context);
  uv_close((uv_handle_t*)&w->poll, on_closed);
}

// watch(fd: number, callback: (status: number) => void): handle
static napi_value Watch_(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  if (!fd_and_args(env, info, 2, argv, &fd, "watch(fd, callback)")) return NULL;
  uv_loop_t* loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  Watch* w = (Watch*)calloc(1, sizeof(Watch));
  if (w == NULL) return throw_errno(env, ENOMEM, "watch");
  w->env = env;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    free(w);
    return throw_errno(env, -rc, "uv_poll_init");
  }
  w->poll.data = w;
  napi_value name;
  CHECK(env, napi_create_string_utf8(env, "labrig:gpio-edge", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_async_init(env, NULL, name, &w->context));
  CHECK(env, napi_create_reference(env, argv[1], 1, &w->callback));
  rc = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (rc != 0) {
    stop_watch(w);
    return throw_errno(env, -rc, "uv_poll_start");
  }
  napi_value handle;
  CHECK(env, napi_create_external(env, w, NULL, NULL, &handle));
  return handle;
}

// unwatch(handle): stops the poll; the handle must not be used again.
static napi_value Unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void* data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "unwatch(handle)");
    return NULL;
  }
  stop_watch((Watch*)data);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"ioctl", NULL, Ioctl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, Watch_, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unwatch", NULL, Unwatch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
