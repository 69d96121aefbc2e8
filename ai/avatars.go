package ai

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync"
)

// The built-in avatar library: twelve 256×256 identicons, drawn once.
// Selection is free and never calls a provider.

// AvatarSize is the avatars' width and height.
const AvatarSize = 256

var avatarNames = []string{"Fox", "Owl", "Otter", "Heron", "Lynx", "Badger", "Falcon", "Hare", "Seal", "Wren", "Bison", "Moth"}

type avatarEntry struct {
	Avatar
	Image Image
}

var (
	avatarsOnce sync.Once
	avatarLib   []avatarEntry
)

// Avatars lists the library.
func Avatars() []Avatar {
	lib := library()
	out := make([]Avatar, len(lib))
	for i, a := range lib {
		out[i] = a.Avatar
	}
	return out
}

func library() []avatarEntry {
	avatarsOnce.Do(func() {
		for _, name := range avatarNames {
			id := "avatar_" + strings.ToLower(name)
			avatarLib = append(avatarLib, avatarEntry{Avatar: Avatar{ID: id, Name: name}, Image: identicon(id)})
		}
	})
	return avatarLib
}

// SelectAvatar picks an avatar: the one whose id or name the text names,
// else one chosen by the prompt (the same prompt always gets the same one).
func SelectAvatar(prompt, text string) Result {
	lib := library()
	want := strings.ToLower(strings.TrimSpace(text))
	for _, a := range lib {
		if want != "" && (want == a.ID || want == strings.ToLower(a.Name)) {
			img := a.Image
			return Result{Avatar: &Avatar{ID: a.ID, Name: a.Name}, Image: &img, Provider: "library"}
		}
	}
	sum := sha256.Sum256([]byte(prompt + "\x00" + text))
	a := lib[binary.BigEndian.Uint32(sum[:4])%uint32(len(lib))]
	img := a.Image
	return Result{Avatar: &Avatar{ID: a.ID, Name: a.Name}, Image: &img, Provider: "library"}
}

// identicon draws a symmetric 5×5 pattern from the id's hash.
func identicon(id string) Image {
	sum := sha256.Sum256([]byte(id))
	fg := color.RGBA{sum[0]/2 + 64, sum[1]/2 + 64, sum[2]/2 + 64, 255}
	img := image.NewPaletted(image.Rect(0, 0, AvatarSize, AvatarSize), color.Palette{color.RGBA{240, 240, 240, 255}, fg})
	cell := AvatarSize / 5
	for row := 0; row < 5; row++ {
		for col := 0; col < 3; col++ {
			if sum[3+row*3+col]%2 == 0 {
				continue
			}
			for _, c := range []int{col, 4 - col} {
				for y := row * cell; y < (row+1)*cell; y++ {
					for x := c * cell; x < (c+1)*cell; x++ {
						img.SetColorIndex(x, y, 1)
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // encoding to memory cannot fail
	return Image{MimeType: "image/png", Width: AvatarSize, Height: AvatarSize, DataBase64: base64.StdEncoding.EncodeToString(buf.Bytes())}
}
